"""switchboard: the operator CLI of a Switchboard gateway, over the edge's REST API."""
