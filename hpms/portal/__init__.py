"""The web face of hpms: the SMS provider's callbacks (delivery reports, patients' replies) and
a health check, served by `hpms.portal.app.create_app`. Parses requests and presents answers;
the rules are the services'."""
