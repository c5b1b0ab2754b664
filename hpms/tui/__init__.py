"""The Textual front-desk scheduler (`hpms tui`); it calls hpms.services like the CLI does."""
