"""The shared pushing skills: routing around blocks, steering a yawed cube, pushing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from polymimic.operators.pushing import (
    FACE_HYSTERESIS,
    GIVE_UP_STEPS,
    UNREACHABLE,
    BlockPush,
    ReachWatch,
    _blocked,
    next_via_point,
    route_waypoint,
    steer_direction,
)

LOW, HIGH = np.array([0.0, -1.0]), np.array([1.0, 1.0])


def _follow(start: np.ndarray, goal: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> list:
    """The polyline the router produces when followed waypoint by waypoint."""
    path, point = [start], start
    for _ in range(20):
        point = route_waypoint(point, goal, centres, radii, LOW, HIGH)
        path.append(point)
        if np.allclose(point, goal):
            return path
    raise AssertionError(f"no route to the goal: {path}")


def test_clear_path_goes_straight() -> None:
    goal = np.array([0.5, 0.3])
    centres, radii = np.array([[0.5, -0.2]]), np.array([0.05])
    np.testing.assert_array_equal(
        route_waypoint(np.zeros(2) + 0.1, goal, centres, radii, LOW, HIGH), goal
    )


def test_route_goes_around_a_row_of_blocks_without_touching_one() -> None:
    # A wall of three discs between start and goal, with gaps too narrow to pass.
    centres = np.array([[0.5, -0.08], [0.5, 0.0], [0.5, 0.08]])
    radii = np.full(3, 0.05)
    start, goal = np.array([0.3, 0.0]), np.array([0.7, 0.0])
    path = _follow(start, goal, centres, radii)
    assert len(path) > 2  # it detoured
    for a, b in zip(path, path[1:], strict=False):
        assert not _blocked(a, b, centres, radii), (a, b)
    length = sum(np.linalg.norm(b - a) for a, b in zip(path, path[1:], strict=False))
    assert length < 0.4 + 2 * 0.13 + 0.05  # round the end of the wall, not a wild detour


def test_start_inside_a_disc_first_leaves_it_radially() -> None:
    centres, radii = np.array([[0.5, 0.0]]), np.array([0.05])
    waypoint = route_waypoint(
        np.array([0.5, 0.03]), np.array([0.5, 0.3]), centres, radii, LOW, HIGH
    )
    assert waypoint[0] == 0.5 and waypoint[1] > 0.05


def test_a_corner_is_not_blended_while_the_hand_would_cut_the_block() -> None:
    # The hand's plan already ends at the first corner round a block (start), but the hand
    # itself is still on the far side: superposed submovements would carry it straight at
    # the next corner, through the block. It must keep heading for the first corner.
    block, radius = np.array([0.5, 0.0]), 0.05
    centres, radii = block[None], np.array([radius])
    goal = np.array([0.5, 0.08])  # just past the block, beside it
    hand = np.array([0.5, -0.08])
    corner = route_waypoint(hand, goal, centres, radii, LOW, HIGH)
    assert not np.allclose(corner, goal)
    blended = next_via_point(corner, goal, centres, radii, LOW, HIGH, 0.02)
    assert _blocked(hand, blended, centres, radii)  # without the hand: cuts the block
    waiting = next_via_point(corner, goal, centres, radii, LOW, HIGH, 0.02, hand_at=hand)
    np.testing.assert_allclose(waiting, corner)
    # Once the hand is at the corner, the route goes on.
    assert not np.allclose(
        next_via_point(corner, goal, centres, radii, LOW, HIGH, 0.02, hand_at=corner), corner
    )


def test_a_hand_resting_just_off_a_route_node_still_moves_on() -> None:
    # A state recorded from Sort6 (better tier, far_first style, seed 1025): the hand rests
    # 0.6 mm from a route node between the two rows of blocks, and the leg on from where it
    # is grazes a neighbour's keep-out disc. Judged without slack, the hand waited there
    # until the time limit.
    hand = np.array([0.5289851427078247, -0.00637556938454509])
    goal = np.array([0.7346955307055734, -0.00923677846718599])
    centres = np.array([
        [0.35258010029792786, 0.06324289739131927], [0.4961162209510803, 0.07210320234298706],
        [0.6718785762786865, 0.07444345206022263], [0.42337265610694885, -0.06713024526834488],
        [0.5785515904426575, -0.06315050274133682], [0.7317107319831848, -0.06415572762489319],
    ])  # fmt: skip
    radii = np.array([0.06766414176015526] * 5 + [0.06028427124746191])
    low, high = np.array([0.30, -0.33]), np.array([0.80, 0.33])
    via = next_via_point(hand, goal, centres, radii, low, high, 0.02, hand_at=hand)
    assert np.linalg.norm(via - hand) > 0.02


def test_steering_overshoots_the_face_normal_error() -> None:
    desired = np.array([0.0, 1.0])
    # Aligned cube: push straight along the desired direction.
    np.testing.assert_allclose(steer_direction(desired, 0.0, 1.0, gain=1.5)[0], desired, atol=1e-12)
    # Cube yawed +10 degrees: its face normal points 10 degrees left of +y (towards -x), so
    # the push must lean right of the desired direction (towards +x) to turn it back.
    yaw = math.radians(10)
    direction, _ = steer_direction(desired, math.sin(4 * yaw), math.cos(4 * yaw), gain=1.5)
    assert direction[0] > 0 and math.isclose(np.linalg.norm(direction), 1.0)
    # Mirrored yaw, mirrored correction; no gain, no overshoot.
    mirrored, _ = steer_direction(desired, -math.sin(4 * yaw), math.cos(4 * yaw), gain=1.5)
    np.testing.assert_allclose(mirrored, direction * (-1, 1), atol=1e-12)
    np.testing.assert_allclose(
        steer_direction(desired, math.sin(4 * yaw), math.cos(4 * yaw), gain=0.0)[0], desired
    )


def test_a_cube_turned_past_45_degrees_is_still_pushed_on_the_same_face() -> None:
    desired = np.array([1.0, 0.0])

    def quarter(yaw_degrees: float) -> tuple[float, float]:
        yaw = math.radians(yaw_degrees)
        return math.sin(4 * yaw), math.cos(4 * yaw)

    _, face = steer_direction(desired, *quarter(40.0), gain=0.5)
    assert math.degrees(face) == pytest.approx(40.0)
    # Turned on to 50 degrees: the -40 degree face is nearer the heading now, but switching
    # would put the rod on the corner; the face pushed so far is kept ...
    _, kept = steer_direction(desired, *quarter(50.0), gain=0.5, face=face)
    assert math.degrees(kept) == pytest.approx(50.0)
    _, fresh = steer_direction(desired, *quarter(50.0), gain=0.5)
    assert math.degrees(fresh) == pytest.approx(-40.0)
    # ... until the other face is nearer by more than the hysteresis.
    _, switched = steer_direction(desired, *quarter(70.0), gain=0.5, face=kept)
    assert math.degrees(switched) == pytest.approx(-20.0)
    assert math.degrees(FACE_HYSTERESIS) < 70.0 - 20.0


def test_block_push_lines_up_then_pushes_and_notices_a_lost_block() -> None:
    push = BlockPush(block_half=0.02, rod_radius=0.01)
    block, goal = np.array([0.5, 0.0]), np.array([0.5, 0.3])
    point, pushing = push.aim(np.array([0.3, -0.2]), block, goal, 0.008)
    assert not pushing and np.allclose(point, (0.5, -0.055))  # pre-push: 2.5 cm off the face
    push.aim(point, block, goal, 0.008)  # the rod arrived
    point, pushing = push.aim(np.array([0.5, -0.03]), block, goal, 0.008)
    assert pushing and point[1] > -0.03  # aims past the contact point
    _, pushing = push.aim(np.array([0.54, -0.03]), block, goal, 0.008)  # slipped sideways
    assert not pushing and not push.pushing


def test_a_block_out_of_reach_is_given_up_only_after_a_second() -> None:
    low, high = np.array([0.30, -0.33]), np.array([0.76, 0.33])
    watch = ReachWatch(low, high)
    inside, outside = np.array([0.40, 0.0]), np.array([0.30 - UNREACHABLE - 0.001, 0.0])
    assert not any(watch.unreachable(outside) for _ in range(GIVE_UP_STEPS - 1))
    assert not watch.unreachable(inside)  # back within reach: the count starts again
    assert not any(watch.unreachable(outside) for _ in range(GIVE_UP_STEPS - 1))
    assert watch.unreachable(outside)
    # A point just past the clip box (a block near the edge) is still worth trying.
    assert not ReachWatch(low, high).unreachable(np.array([0.30 - UNREACHABLE + 0.001, 0.0]))


def test_sort_operator_sees_a_block_in_the_wrong_zone() -> None:
    from polymimic.operators.sort import _any_missorted

    blocks = np.array([[0.5, 0.25], [0.5, -0.25]])
    assert not _any_missorted(blocks, "RB")  # red on the left (+y), blue on the right
    assert _any_missorted(blocks, "BR")
    assert not _any_missorted(np.array([[0.5, 0.1], [0.5, -0.1]]), "BR")  # between the zones
