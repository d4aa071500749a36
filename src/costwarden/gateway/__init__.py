"""The HTTP gateway: an OpenAI- and Anthropic-compatible proxy under budgets, and its admin API
(:func:`costwarden.gateway.admin.admin_app`). Needs ``pip install 'costwarden[gateway]'``."""
