"""Test support shared by every service's suite; imported by tests only, never by a service."""
