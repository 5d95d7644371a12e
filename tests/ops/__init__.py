"""Operating the delegate as a real process: shutdown, health, INIT_SCRIPT, the wheel."""
