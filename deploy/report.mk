# make report-demo: the HTML report of a month of a sample two-WAN home,
# rendered by a headless chromium, with screenshots at phone and desktop
# width (docs/report.md). Needs chromium (apt-get install chromium).
REPORT_DEMO_DIR ?= $(CURDIR)/bin/report-demo

.PHONY: report-demo
report-demo:
	REPORT_DEMO_DIR=$(REPORT_DEMO_DIR) $(GO) test -count=1 -run '^TestHTMLReportInBrowser$$' ./history/
	@echo "== sample report: $(REPORT_DEMO_DIR)/report-30d.html (and report-24h.html)"
	@echo "== screenshots:   $(REPORT_DEMO_DIR)/report-30d-phone.png, report-30d-desktop.png, report-24h-*.png"
