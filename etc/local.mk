# etc/promptmq.conf is the development configuration (state under the
# source tree); packaging installs a production one.
EXTRA_DIST += etc/promptmq.conf
