"""What the console's pages share for the app's life: the API bridge, the keys, the session signer, the pod."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from telephony.admin.auth import KeyRing
from telephony.console.api_bridge import ApiBridge
from telephony.console.login_limit import LoginLimit
from telephony.console.session import SessionSigner

if TYPE_CHECKING:
    from telephony.pod import Pod


@dataclass
class ConsoleState:
    bridge: ApiBridge
    keys: Callable[[], KeyRing]
    signer: Callable[[], SessionSigner | None]
    pod: Callable[[], Pod]
    login_limit: LoginLimit
    secure_cookie: bool
