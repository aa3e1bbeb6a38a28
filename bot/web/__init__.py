"""The project's web parts (chat page and widget; transcript review for leads)."""
