"""Per-person events from tracked frames: a face appeared, its emotion changed, it left.

A subscriber (Home Assistant, a fleet dashboard) wants to hear when something
happens, not thirty frames a second. A track's label counts as changed only
when the new (smoothed) label has held for `hold_s`, so a flicker between two
close emotions is not an event; a track counts as gone only once it has been
missing for `gone_s`, so a detector missing one frame does not make the
person leave and come back. A track is announced (`appeared`) only once it
has lasted `hold_s` too, and only announced tracks `leave`: a detector's
one-frame phantom never reaches an automation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.frames import Face


@dataclass
class _Track:
    face: Face
    label: str
    first_seen: float
    last_seen: float
    candidate: str | None = None
    candidate_since: float = 0.0
    announced: bool = False


@dataclass
class TrackEvent:
    """What happened to one track: `appeared`, `changed` or `left`."""

    type: str
    face: Face
    duration_s: float | None = None  # for `left`: how long the person was in view
    previous: str | None = None  # for `changed`: the label before (Frigate's before/after)
    label: str | None = None  # the label announced, which `left` repeats


@dataclass
class TrackEvents:
    hold_s: float = 1.0
    gone_s: float = 1.0
    _tracks: dict[int, _Track] = field(default_factory=dict)

    def update(self, faces: list[Face], now: float) -> list[TrackEvent]:
        """The events that `faces` (one frame's tracked faces, at `now`: the
        scene's time in seconds, `Frame.t_scene`) make happen, in order:
        appearances and changes, then leavings."""
        events = []
        for face in faces:
            if face.track <= 0:  # untracked: no identity to follow
                continue
            track = self._tracks.get(face.track)
            if track is None:
                track = self._tracks[face.track] = _Track(face, face.label, now, now)
            track.face, track.last_seen = face, now
            if not track.announced:
                if now - track.first_seen >= self.hold_s:  # it has lasted: a person
                    track.announced, track.label, track.candidate = True, face.label, None
                    events.append(TrackEvent("appeared", face, label=face.label))
                continue
            if face.label == track.label:
                track.candidate = None
            elif face.label != track.candidate:
                track.candidate, track.candidate_since = face.label, now
            if track.candidate is not None and now - track.candidate_since >= self.hold_s:
                previous, track.label, track.candidate = track.label, track.candidate, None
                events.append(TrackEvent("changed", face, previous=previous, label=track.label))
        for track_id, track in list(self._tracks.items()):
            if now - track.last_seen > self.gone_s:
                del self._tracks[track_id]
                if track.announced:  # a phantom that never appeared does not leave
                    duration = track.last_seen - track.first_seen
                    events.append(
                        TrackEvent("left", track.face, round(duration, 3), label=track.label)
                    )
        return events

    def close(self, now: float) -> list[TrackEvent]:
        """`left` for every track still in view: the run is ending."""
        events = [
            TrackEvent("left", t.face, round(t.last_seen - t.first_seen, 3), label=t.label)
            for t in self._tracks.values()
            if t.announced
        ]
        self._tracks.clear()
        return events
