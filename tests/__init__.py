"""Tests that cross services: contract, end-to-end, and the fakes they run against."""
