"""The virtual clock and its pacing against a (fake) wall clock."""

import math

import pytest

from sim.clock import Clock

pytestmark = pytest.mark.req("SIM-CLOCK-1")


class FakeWall:
    """A wall clock that moves only when someone sleeps; oversleep models a late OS wake-up."""

    def __init__(self, oversleep=0.0):
        self.t = 1000.0
        self.oversleep = oversleep
        self.sleeps = 0

    def now(self):
        return self.t

    def sleep(self, s):
        self.sleeps += 1
        self.t += s + self.oversleep


def run_ticks(clock, ms, tick_us=5000):
    for _ in range(ms * 1000 // tick_us):
        target = clock.us + tick_us
        clock.pace(target)
        clock.advance_to(target)


def test_unpaced_clock_never_waits():
    wall = FakeWall()
    clock = Clock(0, wall.now, wall.sleep)
    run_ticks(clock, 10_000)
    assert clock.us == 10_000_000
    assert wall.sleeps == 0
    assert wall.t == 1000.0
    assert clock.wall_delay(clock.us + 10**9) == 0.0


@pytest.mark.parametrize("speed", [1.0, 4.0, 0.5, 25.0])
def test_paced_clock_takes_sim_time_over_speed_of_wall_time(speed):
    wall = FakeWall()
    clock = Clock(speed, wall.now, wall.sleep)
    run_ticks(clock, 2000)
    assert clock.us == 2_000_000
    assert math.isclose(wall.t - 1000.0, 2.0 / speed, rel_tol=1e-9)


def test_oversleeping_does_not_accumulate():
    # every sleep wakes 0.3 ms late; deadlines are absolute, so the run ends
    # at most one oversleep after 1 s, not 200 oversleeps after it
    wall = FakeWall(oversleep=0.0003)
    clock = Clock(1.0, wall.now, wall.sleep)
    run_ticks(clock, 1000)
    assert 1.0 <= wall.t - 1000.0 <= 1.0 + 0.0003 + 1e-9


def test_a_backlog_beyond_max_lag_is_given_up_not_sprinted():
    wall = FakeWall()
    clock = Clock(1.0, wall.now, wall.sleep, max_lag_ms=250)
    wall.t += 2.0  # the computer stalled for two seconds
    assert clock.due_us() == 250_000
    assert clock.slipped_us == 1_750_000
    run_ticks(clock, 250)  # the allowed catch-up runs without waiting
    assert wall.sleeps == 0
    run_ticks(clock, 100)  # then pacing resumes
    assert math.isclose(wall.t - 1002.0, 0.1, rel_tol=1e-9)


def test_due_time_follows_the_wall_clock_within_the_lag():
    wall = FakeWall()
    clock = Clock(10.0, wall.now, wall.sleep)
    wall.t += 0.01  # 10 ms of wall time at 10x
    assert clock.due_us() == 100_000
    assert clock.slipped_us == 0


def test_changing_speed_reanchors_at_the_current_instant():
    wall = FakeWall()
    clock = Clock(1.0, wall.now, wall.sleep)
    run_ticks(clock, 100)
    clock.set_speed(2.0)
    start = wall.t
    run_ticks(clock, 100)
    assert math.isclose(wall.t - start, 0.05, rel_tol=1e-9)


@pytest.mark.parametrize("speed", [-1, float("nan"), float("inf")])
def test_bad_speeds_are_refused(speed):
    with pytest.raises(ValueError, match="speed must be a finite number >= 0"):
        Clock(speed)


def test_time_never_goes_back():
    clock = Clock()
    clock.advance_to(5000)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(4999)


def test_anchoring_drops_the_wall_time_spent_before_it():
    wall = FakeWall()
    clock = Clock(1.0, wall.now, wall.sleep)
    wall.t += 0.2  # setting up took 200 ms
    clock.anchor()
    assert clock.due_us() == 0
    assert clock.slipped_us == 0
    run_ticks(clock, 100)
    assert math.isclose(wall.t - 1000.2, 0.1, rel_tol=1e-9)
