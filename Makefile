# usernsctl: one static binary (CGO_ENABLED=0) that operators copy to nodes.
GO      ?= go
BIN     ?= bin/usernsctl
PKGS    ?= ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
export CGO_ENABLED := 0

.PHONY: build run test vet fmt docs bench e2e ansible-test clean

build:
	$(GO) build -trimpath -ldflags '-s -w -X github.com/usernsctl/usernsctl/internal/build.version=$(VERSION) -X github.com/usernsctl/usernsctl/internal/build.commit=$(COMMIT)' -o $(BIN) .

# run: build, then check this host. The tool's verdict is the last line:
# a host that is not ready (exit 1) is an answer, not a failed make; a tool
# that could not run (exit 2) fails make.
run: build
	@./$(BIN) check $(ARGS); rc=$$?; [ $$rc -le 1 ] || exit $$rc

# test: vet, gofmt, and every unit, fixture and (as root) probe test.
test: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) test -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

docs:
	$(GO) test ./checks/catalog -run TestDocsChecksIsCurrent -update
	$(GO) test ./verify -run TestDocsVerifyIsCurrent -update
	$(GO) test ./rules -run TestDocsRulesIsCurrent -update

bench: build
	./scripts/bench.sh

e2e: build
	./e2e/run.sh

# ansible-test: the usernsctl.node collection under real ansible-core (installed from
# Debian when missing), against --root copies of the fixtures, and ansible-test sanity.
ansible-test: build
	USERNSCTL=$(BIN) ./ansible/tests/run.sh

clean:
	rm -rf bin dist
