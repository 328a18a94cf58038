"""The composition root: builds adapters, handlers and the runtime from settings; nothing else imports it."""
