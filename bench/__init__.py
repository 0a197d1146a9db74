"""The benchmark behind `make bench`: Switchboard's added latency and CPU per request."""
