# etc/promptmq.conf is the development configuration (state under the
# source tree).  etc/promptmq.conf.production is the one installed, as
# SYSCONFDIR/promptmq/promptmq.conf, secure by default; its reference
# copy goes to the documentation directory.
EXTRA_DIST += etc/promptmq.conf
dist_doc_DATA = etc/promptmq.conf.production

# `make install` never replaces a configuration that is already there:
# it is the operator's (packages handle it as a conffile).  Uninstalling
# removes it only while it is the one we installed, unchanged.
pkgsysconfdir = $(sysconfdir)/promptmq
PRODUCTION_CONF = $(srcdir)/etc/promptmq.conf.production
INSTALLED_CONF = $(DESTDIR)$(pkgsysconfdir)/promptmq.conf

install-data-local: install-production-conf
install-production-conf:
	$(MKDIR_P) '$(DESTDIR)$(pkgsysconfdir)'
	@if test -f '$(INSTALLED_CONF)'; then \
	  echo "$(INSTALLED_CONF) exists: not replaced" \
	    "(the new one is $(docdir)/promptmq.conf.production)"; \
	else \
	  echo " $(INSTALL) -m 0640 $(PRODUCTION_CONF) '$(INSTALLED_CONF)'"; \
	  $(INSTALL) -m 0640 $(PRODUCTION_CONF) '$(INSTALLED_CONF)'; \
	fi

uninstall-local: uninstall-production-conf
uninstall-production-conf:
	@if cmp -s $(PRODUCTION_CONF) '$(INSTALLED_CONF)'; then \
	  echo " rm -f '$(INSTALLED_CONF)'"; \
	  rm -f '$(INSTALLED_CONF)'; \
	elif test -f '$(INSTALLED_CONF)'; then \
	  echo "$(INSTALLED_CONF) was changed: kept"; \
	fi

.PHONY: install-production-conf uninstall-production-conf
