# OS packages the Postgres local backend needs (sourced by scripts/setup-system.sh, which defines `want`).
want patroni patroni
want etcd etcd-server
want haproxy haproxy
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
services+=(postgresql etcd patroni haproxy)
want dnsmasq dnsmasq-base  # DNS endpoints (writer/reader/primary names that follow failover)
