from enum import StrEnum

import pytest

from manager.transitions import IllegalTransition, Machine


class Light(StrEnum):
    OFF = "OFF"
    ON = "ON"


class Press(StrEnum):
    SWITCH = "switch"
    BREAK = "break"


MACHINE = Machine("lamp", {(Light.OFF, Press.SWITCH): Light.ON,
                           (Light.ON, Press.SWITCH): Light.OFF,
                           (Light.ON, Press.BREAK): Light.OFF})


def test_a_listed_transition_gives_the_next_status() -> None:
    assert MACHINE.next(Light.OFF, Press.SWITCH) is Light.ON
    assert MACHINE.sources(Press.SWITCH) == [Light.OFF, Light.ON]


def test_an_unlisted_transition_names_the_record_status_and_event() -> None:
    with pytest.raises(IllegalTransition, match="lamp: event 'break' is not allowed in "
                                                "status 'OFF'"):
        MACHINE.next(Light.OFF, Press.BREAK)
