module github.com/tetherwfh/tether

go 1.26.8

require (
	github.com/miekg/dns v1.1.73
	github.com/stretchr/testify v1.12.1
	golang.org/x/sys v0.49.0
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/net v0.57.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
