# contrib/ - files for the system around the broker: a SysV init script
# and its defaults, a systemd unit, a logrotate file, Prometheus
# alerting rules and a Grafana dashboard.  Shipped in the
# tarball for packagers, not installed by `make install` (where they go
# is the distribution's choice).  tests/integration/init_script.py runs
# the init script; contrib/check-contrib.sh lints all of them with the
# tools that are installed.
EXTRA_DIST += contrib/init.d/promptmq contrib/default/promptmq \
	contrib/systemd/promptmq.service contrib/logrotate/promptmq \
	contrib/prometheus/promptmq-alerts.yml \
	contrib/grafana/promptmq-dashboard.json

TESTS += contrib/check-contrib.sh
dist_check_SCRIPTS += contrib/check-contrib.sh
