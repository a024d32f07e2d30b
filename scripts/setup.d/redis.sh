# OS packages the Redis local backend needs (sourced by scripts/setup-system.sh, which defines `want`).
want redis-server redis-server
want redis-sentinel redis-sentinel
services+=(redis-server redis-sentinel)
want dnsmasq dnsmasq-base  # DNS endpoints (writer/reader/primary names that follow failover)
