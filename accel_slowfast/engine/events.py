"""mmcv 1.x's hook events and priorities: the vocabulary every hook of the runner uses."""

import difflib
from typing import Any

EVENTS = (
    "before_run",
    "before_train_epoch",
    "before_train_iter",
    "after_train_iter",
    "after_train_epoch",
    "before_val_epoch",
    "before_val_iter",
    "after_val_iter",
    "after_val_epoch",
    "after_run",
)

PRIORITIES = {
    "HIGHEST": 0,
    "VERY_HIGH": 10,
    "HIGH": 30,
    "ABOVE_NORMAL": 40,
    "NORMAL": 50,
    "BELOW_NORMAL": 60,
    "LOW": 70,
    "VERY_LOW": 90,
    "LOWEST": 100,
}

# Public methods a hook may have besides events: Accelerate's checkpointing protocol
# (``accelerator.register_for_checkpointing``).
NON_EVENT_METHODS = ("state_dict", "load_state_dict")


def get_priority(priority: int | str) -> int:
    """mmcv's priority names (``"NORMAL"``) or an int in [0, 100]; lower runs first."""
    if isinstance(priority, str):
        if priority.upper() not in PRIORITIES:
            raise ValueError(f"unknown hook priority {priority!r}; choose one of {list(PRIORITIES)}")
        return PRIORITIES[priority.upper()]
    if not 0 <= priority <= 100:
        raise ValueError(f"hook priority must be in [0, 100], got {priority}")
    return priority


def refuse_stray_methods(hook: Any) -> None:
    """Refuse a hook with a public method that is not an event (a misspelled ``after_train_iteration``):
    it would never be called."""
    stray = [name for name in dir(type(hook)) if not name.startswith("_") and callable(getattr(hook, name))
             and name not in EVENTS and name not in NON_EVENT_METHODS]
    if stray:
        close = difflib.get_close_matches(stray[0], EVENTS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; events are {', '.join(EVENTS)}"
        raise ValueError(f"hook {type(hook).__name__} has public method(s) {stray} that are not runner events "
                         f"and would never be called{hint} (name helpers with a leading underscore)")
