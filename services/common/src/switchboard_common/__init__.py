"""Process plumbing shared by every Switchboard service: no domain words live here."""
