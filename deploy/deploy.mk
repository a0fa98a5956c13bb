# Install and release targets, included by the Makefile (docs/deploy.md).
#
#   make install [PREFIX=/usr/local] [DESTDIR=]   binary, imon-configure, unit, sample
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]
#   make dist                                     static binaries and .deb packages in dist/

GO       ?= go
BINARY   ?= imon
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  ?= -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# The binary `install` copies (built by the Makefile's build target).
INSTALL_BIN ?= bin/$(BINARY)
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   ?= $(PREFIX)/bin
DOCDIR   ?= $(PREFIX)/share/doc/imon
# Admin-local units, as the Python imon installed it; takes precedence over
# the .deb's /lib/systemd/system/imon@.service.
UNITDIR  ?= /etc/systemd/system

DIST     ?= dist
NFPM_VERSION ?= v2.45.2
NFPM     ?= $(CURDIR)/bin/tools/nfpm
# Debian versions must start with a digit: v1.2.3 -> 1.2.3,
# v1.2.3-4-gabc123-dirty -> 1.2.3.4.gabc123.dirty, abc123 -> 0.0.0+gitabc123.
DEB_VERSION ?= $(shell echo '$(VERSION)' | sed -E 's/^v//; /^[0-9]/!s/^/0.0.0+git/; s/-/./g')

.PHONY: install uninstall dist

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/imon
	ln -sfn imon $(DESTDIR)$(BINDIR)/imon-configure
	sed 's#^ExecStart=/usr/bin/imon #ExecStart=$(BINDIR)/imon #' deploy/imon@.service > $(DESTDIR)$(UNITDIR)/imon@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/imon@.service
	install -m 0755 deploy/imon-action.sample $(DESTDIR)$(BINDIR)/imon-action.sample
	install -m 0644 deploy/imon-unconfined.conf docs/deploy.md $(DESTDIR)$(DOCDIR)/
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "Installed $(BINDIR)/imon. Next: sudo imon configure; sudo systemctl enable --now imon@NAME"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/imon $(DESTDIR)$(BINDIR)/imon-configure $(DESTDIR)$(BINDIR)/imon-action.sample
	rm -f $(DESTDIR)$(UNITDIR)/imon@.service
	rm -f $(DESTDIR)$(DOCDIR)/imon-unconfined.conf $(DESTDIR)$(DOCDIR)/deploy.md
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

$(NFPM):
	GOBIN=$(dir $(NFPM)) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# dist_one NAME GOARCH GOARM NFPM-ARCH DEB-SUFFIX: one static binary and its .deb.
define dist_one
	CGO_ENABLED=0 GOOS=linux GOARCH=$(2) GOARM=$(3) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/imon-linux-$(1) ./cmd/imon
	IMON_ARCH=$(4) IMON_DEB_VERSION=$(DEB_VERSION) IMON_BIN=$(DIST)/imon-linux-$(1) \
		$(NFPM) package --config deploy/nfpm.yaml --packager deb --target $(DIST)/imon_$(DEB_VERSION)_$(5).deb

endef

# Every Raspberry Pi: arm64 (64-bit OS), armv6 (32-bit OS, any Pi incl. Zero
# and 1), armv7 (32-bit OS on Pi 2 and later); amd64 for PCs. Both 32-bit
# packages have the Debian architecture armhf.
dist: $(NFPM)
	rm -rf $(DIST)
	mkdir -p $(DIST)
	$(call dist_one,amd64,amd64,,amd64,amd64)
	$(call dist_one,arm64,arm64,,arm64,arm64)
	$(call dist_one,armv6,arm,6,arm6,armhf-armv6)
	$(call dist_one,armv7,arm,7,arm7,armhf-armv7)
	cd $(DIST) && sha256sum imon-linux-* *.deb > SHA256SUMS
	@ls -l $(DIST)
