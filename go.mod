module github.com/cfgsnap/cfgsnap

go 1.26.0

require (
	github.com/pkg/sftp v1.13.12
	github.com/tidwall/gjson v1.20.0
	golang.org/x/crypto v0.58.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)

require (
	github.com/kr/fs v0.1.0 // indirect
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.2.0 // indirect
)
