"""Whether an app setting is a Key Vault reference App Service could not resolve.

App Service resolves `@Microsoft.KeyVault(SecretUri=...)` or `@Microsoft.KeyVault(VaultName=...;SecretName=...)`
when the app starts; when it cannot (the app's identity has no access yet, a wrong vault or secret name), the
setting keeps the reference's own text (Microsoft Learn, "Use Key Vault references as app settings"; the portal and
the ARM `config/configreferences/appsettings` API show why: AccessToKeyVaultDenied, SecretNotFound, VaultNotFound,
...). That text is public: anyone can read it in infra/modules/functionapp.bicep. So a secret holding it is no
secret, and a URL holding it is no URL.

The one test for it, shared by the settings (Settings.unresolved) and the few places that take a secret as an
argument (identity.from_flow): pure, no I/O, cheap to import.
"""
from __future__ import annotations

import re

# Case-insensitive and whitespace-tolerant: App Service matches the prefix without regard to case, and a value
# pasted with a leading space or a space before the parenthesis must not slip through as a "secret".
_REFERENCE = re.compile(r"^\s*@\s*microsoft\s*\.\s*keyvault\s*\(", re.IGNORECASE)


def is_reference(value: object) -> bool:
    """Whether `value` is the text of a Key Vault reference (and so, in a running app, an unresolved one)."""
    return isinstance(value, str) and _REFERENCE.match(value) is not None
