"""Email: the candidate link's message (``link_message``) and sending it over SMTP (``smtp``)."""
