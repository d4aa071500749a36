"""Test helpers shipped with costwarden (a fake LLM upstream), for our tests and yours."""
