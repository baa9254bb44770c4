module github.com/tokenvault/tokenvault

go 1.26

require (
	github.com/fernet/fernet-go v0.0.0-20240119011108-303da6aec611
	github.com/google/go-cmp v0.7.0
	go.etcd.io/bbolt v1.5.0
)

require golang.org/x/sys v0.45.0 // indirect
