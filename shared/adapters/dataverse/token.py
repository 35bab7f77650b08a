"""Bearer tokens for Dataverse from azure-identity: the app's managed identity in Azure, `az login` locally.

The identity must exist in the environment as an application user with a security role over the
closedloop tables. Tokens are cached by the credential and refreshed before they expire.
"""
from __future__ import annotations

from collections.abc import Callable


def token_provider(url: str) -> Callable[[], str]:
    """A callable returning a current access token for `https://<org>.crm.dynamics.com/.default`."""
    from azure.identity import DefaultAzureCredential

    credential, scope = DefaultAzureCredential(), url.rstrip("/") + "/.default"
    return lambda: credential.get_token(scope).token
