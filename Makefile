# usernsctl: one static binary (CGO_ENABLED=0) that operators copy to nodes.
GO      ?= go
BIN     ?= bin/usernsctl
PKGS    ?= ./...
export CGO_ENABLED := 0

.PHONY: build run test vet fmt docs bench e2e ansible-test clean

build:
	$(GO) build -trimpath -ldflags '-s -w' -o $(BIN) .

# run: build, then check this host.
run: build
	./$(BIN) check $(ARGS)

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
