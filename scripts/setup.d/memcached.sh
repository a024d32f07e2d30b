# OS packages the Memcached local backend needs (sourced by scripts/setup-system.sh, which defines `want`).
want memcached memcached
services+=(memcached)
