"""The standard streams of a container process, numbered as conmon's attach socket numbers them."""

from __future__ import annotations

import enum


class Pipe(enum.IntEnum):
    STDIN = 1
    STDOUT = 2
    STDERR = 3
