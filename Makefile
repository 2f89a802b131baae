# The two commands of the README.  Each sets up its own environment first (scripts/bootstrap.sh).
.PHONY: demo test test-all lint setup

setup:
	bash scripts/bootstrap.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# Also the long tests (marked `slow`); what CI runs.
test-all:
	bash scripts/test.sh --all

lint: setup
	$$(bash scripts/bootstrap.sh --print-env | cut -d= -f2) -m ruff check .
