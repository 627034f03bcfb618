# cfgsnap: `make demo` and `make test` set up everything they need on a fresh machine.
SHELL   := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GOBUILD := CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)'
UPY     := eventhandler-scripts/upython

.PHONY: build cross demo test test-deps vet fuzz bench clean

## build: the static binary for this machine, bin/cfgsnap
build:
	$(GOBUILD) -o bin/cfgsnap ./cmd/cfgsnap

## cross: static binaries for the switches, bin/cfgsnap-linux-{amd64,arm64}
cross:
	GOOS=linux GOARCH=amd64 $(GOBUILD) -o bin/cfgsnap-linux-amd64 ./cmd/cfgsnap
	GOOS=linux GOARCH=arm64 $(GOBUILD) -o bin/cfgsnap-linux-arm64 ./cmd/cfgsnap

$(UPY)/node_modules: $(UPY)/package-lock.json
	npm ci --prefix $(UPY) --no-audit --no-fund --loglevel=error
	touch $@

## demo: a simulated commit through the real script (MicroPython) and binary to a local folder
demo: build $(UPY)/node_modules
	lab/sim/demo.sh

## test-deps: what the tests' real peers need (OpenSSH, iproute2, git, curl, age, Node, MicroPython, versitygw for S3)
test-deps: $(UPY)/node_modules
	@need=(); \
	[ -x /usr/sbin/sshd ] || need+=(openssh-server); \
	[ -x /usr/lib/openssh/sftp-server ] || need+=(openssh-sftp-server); \
	command -v ssh-keygen >/dev/null || need+=(openssh-client); \
	command -v ip >/dev/null || need+=(iproute2); \
	command -v python3 >/dev/null || need+=(python3); \
	command -v git >/dev/null || need+=(git); \
	command -v curl >/dev/null || need+=(curl); \
	command -v age >/dev/null || need+=(age); \
	if [ $${#need[@]} -gt 0 ]; then \
		echo "installing $${need[*]}"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$${need[@]}" >/dev/null; \
	fi
	@# versitygw: the S3 server of handler/destination/s3's tests, built once into the first
	@# GOPATH's bin (where the tests look first, then PATH); pinned, so every run tests the same server.
	@gobin="$$(go env GOPATH | cut -d: -f1)/bin"; \
	if [ ! -x "$$gobin/versitygw" ] && ! command -v versitygw >/dev/null; then \
		echo "installing versitygw into $$gobin (S3 test server; a few minutes, once)"; \
		CGO_ENABLED=0 GOBIN="$$gobin" go install github.com/versity/versitygw/cmd/versitygw@v1.8.0; \
	fi

vet:
	@out=$$(gofmt -l cmd handler eventhandler-scripts lab); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...

## test: every test, against real peers, with the race detector
test: test-deps vet
	go test -race -count=1 ./...

## test-faults: the fault suite alone, verbose, with its verdict lines (make test runs it too, in ./...);
## CFGSNAP_FAULTS_SEED=N repeats a run, CFGSNAP_FAULTS_KILLS=N sets the SIGKILLs (default 200)
.PHONY: test-faults
test-faults: test-deps
	go test -race -count=1 -run '^TestFaults$$' -v ./cmd/cfgsnap/

## fuzz: a short run of each fuzz test
fuzz:
	go test -run '^$$' -fuzz FuzzParse -fuzztime 20s ./handler/event
	go test -run '^$$' -fuzz FuzzName -fuzztime 20s ./handler/snapshot
	go test -run '^$$' -fuzz FuzzHostName -fuzztime 20s ./handler/snapshot
	go test -run '^$$' -fuzz FuzzPattern -fuzztime 20s ./handler/snapshot
	go test -run '^$$' -fuzz FuzzScan -fuzztime 20s ./handler/jsonscan

## bench: the packages' benchmarks, then lab/BENCHMARKS.md: each figure beside its anchor, printed too
bench: test-deps build
	@[ -x /usr/bin/time ] || { echo "installing time (peak RSS of the measured processes)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null; }
	set -o pipefail; go test -run '^$$' -bench . -benchmem ./... | tee bin/go-bench.txt
	go test -v -count=1 -timeout 15m -run '^TestBenchReport$$' ./lab/bench \
		-args -report $(CURDIR)/lab/BENCHMARKS.md -gobench $(CURDIR)/bin/go-bench.txt -bin $(CURDIR)/bin/cfgsnap

clean:
	rm -rf bin demo-out

## lab-up: the containerlab lab (lab/README.md): the binary, fresh keys in lab/.state, deploy (root; SRL_VERSION=... overrides the SR Linux tag)
lab-up: cross
	@command -v containerlab >/dev/null || { echo "lab-up: containerlab is not installed (lab/README.md)"; exit 1; }
	lab/setup.sh
	cd lab && containerlab deploy --reconfigure -t cfgsnap.clab.yml

## lab-verify: on the deployed lab, a commit by alice, then each server's copy and the event-handler state checked
lab-verify:
	lab/verify.sh

## lab-down: destroy the lab and remove lab/.state
lab-down:
	cd lab && containerlab destroy --cleanup -t cfgsnap.clab.yml
	rm -rf lab/.state

.PHONY: lab-up lab-verify lab-down
