// Command tokenvault tokenizes card numbers and other secrets from the
// command line, in a vault kept in one bbolt file.
//
// Usage:
//
//	tokenvault keygen [--rotate] [--out FILE]
//	tokenvault tokenize [flags] < values > tokens
//	tokenvault detokenize [flags] < tokens > values
//	tokenvault suspend|activate|close [--reason TEXT] [--actor TEXT] TOKEN
//	tokenvault inspect TOKEN
//	tokenvault rewrap [--batch N]
//	tokenvault compact
//	tokenvault serve [--addr HOST:PORT] [--api-keys PATH] [--tls-cert FILE --tls-key FILE]
//	tokenvault apikey create --role ROLE[,ROLE] [--name NAME] | list | revoke ID
//	tokenvault help [COMMAND]
//
// # Keys
//
// Every command that opens the vault takes its keys from the first of:
//   - --key-file PATH, a file written by keygen;
//   - TOKENVAULT_KEYS and TOKENVAULT_INDEX_KEY in the environment;
//   - the key file beside the database: the database path with its extension
//     replaced by .key, so ./tokenvault.key for the default ./tokenvault.db.
//
// When none of them exists and the database does not exist either, tokenize
// creates that key file with mode 0600 and warns on standard error that the
// key sits beside the data. For an existing database the commands never
// create a key, because a new key cannot decrypt what the database holds.
//
// # Lines
//
// tokenize and detokenize read one value per line and write one result per
// line, in input order, so that line N of the output belongs to line N of the
// input. A line ending may be LF or CRLF. A line that fails gets an empty
// output line and a message "line N: reason" on standard error. The message
// never contains the line.
//
// # Signals
//
// On SIGINT or SIGTERM, tokenize and detokenize stop reading input, finish
// the lines already read, close the database and exit with status 1. Other
// commands stop their current step and close the database. A second signal
// ends the process at once.
//
// # Exit status
//
// 0 on success; 1 when a line failed or the command failed; 2 for a usage
// error, such as an unknown command, an invalid flag or a missing TOKEN.
//
// # Output
//
// Only detokenize writes values (on standard output). Only keygen without
// --out writes keys (on standard output), apikey create writes the new API
// key's secret (on standard output), and serve writes the secret of the admin
// key it creates on first start (on standard error, once). No other output,
// and no error message, contains a card number, a value, a key or a secret.
package main
