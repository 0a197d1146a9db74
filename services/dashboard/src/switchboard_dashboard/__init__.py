"""The Switchboard dashboard: a small server-rendered admin UI served through the edge at /ui/."""
