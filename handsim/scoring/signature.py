"""Contact-signature matching: did a trial touch the object with the right hand regions?

A grasp type's :class:`~handsim.grasps.Signature` is written in contact-region label patterns
(``index.distal.tip``, ``palm.*``; see models/README.md). A hand has a fixed label vocabulary
(R labels). :meth:`CompiledSignature.compile` turns the patterns into boolean masks over that
vocabulary once; :meth:`CompiledSignature.match` then judges a whole batch of trials with a few
array operations (pure numpy, no PyBullet).

Verdict per trial ``b``: every required group has at least one label in contact, no forbidden
pattern has a label in contact, and the thumb state agrees with ``signature.thumb`` (a hand
without a thumb fails every signature that names a thumb position: the position is part of the
type's definition in the taxonomy). Given the contact forces per label, a required group must
also carry a minimum normal force in total: a finger lying within the contact distance of the
object without pressing on it is beside the object, not holding it. Forbidden patterns are
judged on contact alone (touching is enough to break the type). A signature may also name
fingers that must lie along the object's long axis (``along``: index finger extension's index,
VF3, on the top of the handle); the caller measures each such finger's angle to that axis and
the verdict needs it within the signature's limit. A signature that forbids the
palm (``palm.*``: pad and side opposition) also forbids the links the hand's metadata gives no
region (label ``other``): such a link is not a finger pad either.

A pattern that matches no label of the vocabulary is an error (:class:`UnknownNameError`) only
when it names a part (``<finger>.<segment>`` or ``palm``) the hand has: then the pattern must
be a typo. When the hand lacks the part (a four-finger hand has no ``little.*`` labels) a
forbidden pattern is simply never hit, and a required group with no label at all can never be
satisfied: the verdict is False with the reason ``hand has no region for little.*.pad|...``.
"""

from __future__ import annotations

import fnmatch
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim.errors import ConfigurationError, UnknownNameError, suggest
from handsim.grasps import ALL_REGION_LABELS, Signature
from handsim.regions import OTHER_LABEL
from handsim.tolerances import over_limit

__all__ = ["OTHER_FORBIDDEN_WITH", "CompiledSignature", "SignatureMatch", "match_signature"]

#: A signature forbidding this pattern also forbids every unlabelled link (``other.<link>``).
OTHER_FORBIDDEN_WITH = "palm.*"


def _part(label_or_pattern: str) -> str:
    """``index.distal.tip`` -> ``index.distal``; ``palm.pad`` -> ``palm`` (drop the region)."""
    return label_or_pattern.rsplit(".", 1)[0]


def _pattern_mask(pattern: str, labels: tuple[str, ...], hand_parts: frozenset[str]) -> NDArray[np.bool_]:
    if not any(fnmatch.fnmatchcase(lab, pattern) for lab in ALL_REGION_LABELS):
        raise UnknownNameError(
            f"signature pattern {pattern!r} matches no contact-region label of the grammar "
            "'<finger>.<segment>.<pad|side|dorsal|tip>' / 'palm.<pad|side|dorsal>'; "
            + suggest(pattern, ALL_REGION_LABELS, "region label")
        )
    mask = np.fromiter((fnmatch.fnmatchcase(lab, pattern) for lab in labels), dtype=bool, count=len(labels))
    if not mask.any():
        part_pattern = _part(pattern)
        if any(fnmatch.fnmatchcase(p, part_pattern) for p in hand_parts):
            # The hand has the finger segment / palm yet no label matches: a typo, not an absence.
            raise UnknownNameError(
                f"signature pattern {pattern!r} matches no label of the hand although the hand has "
                f"the part {part_pattern!r}; " + suggest(pattern, labels, "region label")
            )
    return mask


@dataclass(frozen=True, eq=False)
class CompiledSignature:
    """A signature's patterns resolved to boolean masks over one hand's label vocabulary.

    Build with :meth:`compile` (cached per signature and vocabulary).

    Attributes:
        signature: The signature compiled.
        labels: The hand's label vocabulary, R labels.
        group_masks: (G, R) bool, labels satisfying each required group.
        forbidden_masks: (F, R) bool, labels matching each forbidden pattern.
        impossible: (G,) bool, required groups the hand has no label for.
        group_names: G strings, each group's patterns joined by ``|``.
        other_mask: (R,) bool, the unlabelled-link label (``other``, or ``other.<link>``) the signature
            forbids: all of them when it forbids ``palm.*`` (pad and side opposition), none
            otherwise. A link the hand's metadata gives no region (a forearm, a thumb base) is
            not a finger pad, so a type held off the palm cannot lean on it either.
    """

    signature: Signature
    labels: tuple[str, ...]
    group_masks: NDArray[np.bool_]
    forbidden_masks: NDArray[np.bool_]
    impossible: NDArray[np.bool_]
    group_names: tuple[str, ...]
    other_mask: NDArray[np.bool_]

    @classmethod
    def compile(cls, signature: Signature, labels: Sequence[str]) -> CompiledSignature:
        """Resolve a signature's patterns against a hand's label vocabulary.

        Args:
            signature: The grasp's contact signature.
            labels: The hand's contact-region labels (R distinct strings), in the column order of
                the ``in_contact`` matrices that will be matched.

        Returns:
            The compiled signature (the same object for equal arguments: it is cached).

        Raises:
            UnknownNameError: If a pattern is outside the label grammar, or matches no label
                although the hand has the part it names.
            ConfigurationError: If the vocabulary has duplicate or non-string labels.
        """
        labels_t = tuple(labels)
        if not all(isinstance(lab, str) for lab in labels_t):
            raise ConfigurationError(f"labels: expected strings, got {labels_t!r}")
        if len(set(labels_t)) != len(labels_t):
            dups = sorted({lab for lab in labels_t if labels_t.count(lab) > 1})
            raise ConfigurationError(f"labels: expected distinct labels, got duplicates {dups}")
        return _compile_cached(signature, labels_t)

    @property
    def num_labels(self) -> int:
        """R, the vocabulary size."""
        return len(self.labels)

    # The operands :meth:`match` needs on every call, derived once per compiled signature (an
    # env scores every step).
    @functools.cached_property
    def _group_counts(self) -> NDArray[np.int32]:
        """(R, G) int32, ``group_masks.T``: labels in contact per group by a product."""
        return self.group_masks.T.astype(np.int32)

    @functools.cached_property
    def _group_weights(self) -> NDArray[np.float64]:
        """(R, G) float64, ``group_masks.T``: force per group by a product."""
        return self.group_masks.T.astype(np.float64)

    @functools.cached_property
    def _forbidden_counts(self) -> NDArray[np.int32]:
        """(R, F) int32, ``forbidden_masks.T``."""
        return self.forbidden_masks.T.astype(np.int32)

    @functools.cached_property
    def _along_limits(self) -> NDArray[np.float64]:
        """(A,) each ``along`` finger's largest angle to the object's axis [deg]."""
        return np.array([a.max_angle_deg for a in self.signature.along], dtype=np.float64)

    def match(
        self,
        in_contact: ArrayLike,
        thumb_abducted: ArrayLike | None,
        label_force_n: ArrayLike | None = None,
        min_force_n: float = 0.0,
        along_deg: ArrayLike | None = None,
    ) -> SignatureMatch:
        """Judge a batch of trials against the signature.

        Args:
            in_contact: (B, R) bool, trial b touched the object with label r; or (R,) for one
                trial. 0/1 integers are accepted.
            thumb_abducted: (B,) bool, the thumb was abducted in trial b; a scalar applies to
                every trial. ``None``: the hand has no thumb. A thumb position is part of a
                type's definition, so a thumbless hand then fails every signature that names
                one (``"abducted"`` or ``"adducted"``), with the reason "hand has no thumb".
            label_force_n: (B, R) or (R,) float, the contact normal force on each label [N]
                (summed over its contact points), in the shape of ``in_contact``. ``None``: no
                force is judged (kinematic matching, e.g. ``handsim synth``'s model).
            min_force_n: With ``label_force_n``, the least total normal force a required group's
                labels must carry for the group to count [N]; a group touched with less fails
                with "required ... touched without load (0.000 N < 0.010 N)".
            along_deg: (B, A) or (A,) float, the angle [deg] between each finger of
                ``signature.along`` (in its order) and the object's long axis; NaN when the hand
                has no such finger (the trial then fails: "hand has no index to lie along the
                object"). Needed exactly when the signature has ``along`` entries.

        Returns:
            The per-trial verdicts; a single (R,) trial gives arrays without the batch axis.

        Raises:
            ConfigurationError: On a wrong shape, non-boolean contacts, forces that are not
                finite and >= 0, or ``along_deg`` missing for a signature with ``along`` entries
                (or given for one without), or outside [0, 90] deg.
        """
        contact = _as_bool(in_contact, "in_contact")
        single = contact.ndim == 1
        if single:
            contact = contact[None, :]
        if contact.ndim != 2 or contact.shape[1] != self.num_labels:
            raise ConfigurationError(
                f"in_contact: expected shape (B, {self.num_labels}) or ({self.num_labels},) (one column per "
                f"label), got {np.shape(in_contact)}"
            )
        batch = contact.shape[0]
        no_thumb = thumb_abducted is None
        thumb = _as_bool(False if no_thumb else thumb_abducted, "thumb_abducted")
        if thumb.ndim == 0:
            thumb = np.full(batch, bool(thumb))
        if thumb.shape != (batch,):
            raise ConfigurationError(f"thumb_abducted: expected shape ({batch},) or (), got {thumb.shape}")

        # int32 counts so that many labels per group cannot overflow before the > 0 test.
        c = contact.astype(np.int32)
        group_hit = (c @ self._group_counts) > 0  # (B, G)
        group_force = None
        unloaded = np.zeros_like(group_hit)
        if label_force_n is not None:
            group_force = self._group_force(label_force_n, contact, single)
            if not (isinstance(min_force_n, (int, float)) and math.isfinite(min_force_n) and min_force_n >= 0):
                raise ConfigurationError(f"min_force_n: expected a finite number >= 0, got {min_force_n!r}")
            unloaded = group_hit & (group_force < float(min_force_n))
        missing = ~group_hit | unloaded
        forbidden_hit = (c @ self._forbidden_counts) > 0  # (B, F)
        other_hit = (contact & self.other_mask).any(axis=1)  # (B,)
        if no_thumb and self.signature.thumb in ("abducted", "adducted"):
            thumb_ok = np.zeros(batch, dtype=bool)
        elif self.signature.thumb == "abducted":
            thumb_ok = thumb.copy()
        elif self.signature.thumb == "adducted":
            thumb_ok = ~thumb
        else:
            thumb_ok = np.ones(batch, dtype=bool)
        along = self._along_deg(along_deg, batch, single)
        misaligned = ~(along <= self._along_limits)  # NaN (no such finger) fails too
        matched = (~missing.any(axis=1) & ~forbidden_hit.any(axis=1) & ~other_hit & thumb_ok
                   & ~misaligned.any(axis=1))
        return SignatureMatch(
            self, contact, thumb, matched, missing, forbidden_hit, thumb_ok, single, no_thumb,
            group_force_b=group_force, unloaded_b=unloaded, min_force_n=float(min_force_n), other_hit_b=other_hit,
            along_deg_b=along, misaligned_b=misaligned,
        )

    def _along_deg(self, along_deg: ArrayLike | None, batch: int, single: bool) -> NDArray[np.float64]:
        """(B, A) angles of the ``along`` fingers [deg], checked."""
        count = len(self.signature.along)
        if along_deg is None:
            if count:
                names = [a.finger for a in self.signature.along]
                raise ConfigurationError(
                    f"along_deg: the signature needs the angle of {names} to the object's long axis "
                    f"(shape ({batch}, {count})), got None"
                )
            return np.zeros((batch, 0), dtype=np.float64)
        arr = np.asarray(along_deg, dtype=np.float64)
        if single and arr.ndim == 1:
            arr = arr[None, :]
        if arr.shape != (batch, count):
            raise ConfigurationError(f"along_deg: expected shape ({batch}, {count}) (one column per signature "
                                     f"'along' finger), got {np.shape(along_deg)}")
        if count:  # most signatures have no along finger: nothing to range-check
            known = arr[~np.isnan(arr)]
            if (known < 0).any() or (known > 90).any():
                raise ConfigurationError(f"along_deg: expected angles in [0, 90] deg or NaN, got {arr.tolist()}")
        return arr

    def _group_force(self, label_force_n: ArrayLike, contact: NDArray[np.bool_], single: bool) -> NDArray[np.float64]:
        """(B, G) total normal force on each required group's labels in contact [N]."""
        force = np.asarray(label_force_n, dtype=np.float64)
        if single and force.ndim == 1:
            force = force[None, :]
        if force.shape != contact.shape:
            raise ConfigurationError(
                f"label_force_n: expected the shape of in_contact {contact.shape}, got {np.shape(label_force_n)}"
            )
        if not np.isfinite(force).all() or (force < 0).any():
            raise ConfigurationError("label_force_n: expected finite forces >= 0 [N]")
        return np.where(contact, force, 0.0) @ self._group_weights


@functools.lru_cache(maxsize=512)
def _compile_cached(signature: Signature, labels: tuple[str, ...]) -> CompiledSignature:
    hand_parts = frozenset(_part(lab) for lab in labels)
    groups = [
        np.any([_pattern_mask(p, labels, hand_parts) for p in group], axis=0)
        if group else np.zeros(len(labels), dtype=bool)
        for group in signature.required
    ]
    forbidden = [_pattern_mask(p, labels, hand_parts) for p in signature.forbidden]
    group_masks = np.array(groups, dtype=bool).reshape(len(groups), len(labels))
    forbidden_masks = np.array(forbidden, dtype=bool).reshape(len(forbidden), len(labels))
    impossible = ~group_masks.any(axis=1)
    forbids_palm = OTHER_FORBIDDEN_WITH in signature.forbidden
    other_mask = np.array([forbids_palm and lab.split(".")[0] == OTHER_LABEL for lab in labels], dtype=bool)
    for arr in (group_masks, forbidden_masks, impossible, other_mask):
        arr.setflags(write=False)  # shared through the cache: nobody may edit it
    return CompiledSignature(
        signature=signature,
        labels=labels,
        group_masks=group_masks,
        forbidden_masks=forbidden_masks,
        impossible=impossible,
        group_names=tuple("|".join(g) for g in signature.required),
        other_mask=other_mask,
    )


def _as_bool(x: ArrayLike, name: str) -> NDArray[np.bool_]:
    arr = np.asarray(x)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind in "iuf" and np.all((arr == 0) | (arr == 1)):
        return arr.astype(bool)
    raise ConfigurationError(
        f"{name}: expected booleans (or 0/1), got dtype {arr.dtype} values {np.unique(arr)[:5]}"
    )


@dataclass(frozen=True, eq=False)
class SignatureMatch:
    """Per-trial verdicts of one compiled signature on a batch of trials.

    Arrays carry the batch axis first (B) unless the input was a single (R,) trial.

    Attributes:
        compiled: The compiled signature that was matched.
        contact: (B, R) bool, the contact matrix judged.
        thumb_abducted: (B,) bool.
        matched_b: (B,) bool verdicts (always batched; see :attr:`matched`).
        missing_b: (B, G) bool, required group g had no contact.
        forbidden_hit_b: (B, F) bool, forbidden pattern f was touched.
        thumb_ok_b: (B,) bool, the thumb state agrees with the signature.
        single: The input was one (R,) trial.
        no_thumb: The hand has no thumb (``thumb_abducted`` is then all False and meaningless).
        group_force_b: (B, G) total normal force on each required group's labels in contact [N],
            or None when no forces were given.
        unloaded_b: (B, G) bool, required group g was touched with less than ``min_force_n``
            (then also ``missing_b``).
        min_force_n: The force a required group needed [N] (0 when no forces were given).
        other_hit_b: (B,) bool, an unlabelled link the signature forbids
            (:attr:`CompiledSignature.other_mask`) touched; None: not judged.
        along_deg_b: (B, A) angles of the signature's ``along`` fingers to the object's long
            axis [deg] (NaN: the hand has no such finger); A = 0 for most signatures.
        misaligned_b: (B, A) bool, the finger's angle exceeds its limit (or is NaN).
    """

    compiled: CompiledSignature
    contact: NDArray[np.bool_]
    thumb_abducted: NDArray[np.bool_]
    matched_b: NDArray[np.bool_]
    missing_b: NDArray[np.bool_]
    forbidden_hit_b: NDArray[np.bool_]
    thumb_ok_b: NDArray[np.bool_]
    single: bool = False
    no_thumb: bool = False
    group_force_b: NDArray[np.float64] | None = None
    unloaded_b: NDArray[np.bool_] | None = None
    min_force_n: float = 0.0
    other_hit_b: NDArray[np.bool_] | None = None
    along_deg_b: NDArray[np.float64] | None = None
    misaligned_b: NDArray[np.bool_] | None = None

    def _out(self, arr: NDArray[np.bool_]) -> NDArray[np.bool_]:
        return arr[0] if self.single else arr

    @property
    def matched(self) -> NDArray[np.bool_]:
        """(B,) bool: the trial satisfies the whole signature."""
        return self._out(self.matched_b)

    @property
    def missing(self) -> NDArray[np.bool_]:
        """(B, G) bool: required group g had no label in contact (or, judged with forces, too
        little load)."""
        return self._out(self.missing_b)

    @property
    def forbidden_hit(self) -> NDArray[np.bool_]:
        """(B, F) bool: forbidden pattern f had a label in contact."""
        return self._out(self.forbidden_hit_b)

    @property
    def thumb_ok(self) -> NDArray[np.bool_]:
        """(B,) bool: the thumb position agrees with ``signature.thumb``."""
        return self._out(self.thumb_ok_b)

    def __len__(self) -> int:
        return int(self.matched_b.shape[0])

    def reasons(self, b: int = 0) -> list[str]:
        """Why trial ``b`` failed, one human-readable line per cause; empty when it matched.

        Examples: ``"required thumb.distal.tip|thumb.distal.pad not in contact"``,
        ``"required index.*.pad|index.distal.tip touched without load (0.000 N < 0.010 N)"``,
        ``"forbidden palm.* touched (palm.pad)"``, ``"thumb adducted, grasp needs abducted"``,
        ``"hand has no region for little.*.pad|little.distal.tip"``,
        ``"hand has no thumb, grasp needs thumb adducted"``.
        """
        self._check_index(b)
        comp = self.compiled
        out: list[str] = []
        for g, name in enumerate(comp.group_names):
            if comp.impossible[g]:
                out.append(f"hand has no region for {name}")
            elif self.unloaded_b is not None and self.unloaded_b[b, g]:
                assert self.group_force_b is not None
                out.append(
                    f"required {name} touched without load "
                    f"({self.group_force_b[b, g]:.3f} N < {self.min_force_n:.3f} N)"
                )
            elif self.missing_b[b, g]:
                out.append(f"required {name} not in contact")
        out.extend(self.forbidden_reasons(b))
        if self.misaligned_b is not None:
            for a, spec in enumerate(comp.signature.along):
                if self.misaligned_b[b, a]:
                    assert self.along_deg_b is not None
                    angle = float(self.along_deg_b[b, a])
                    if math.isnan(angle):
                        out.append(f"hand has no {spec.finger} to lie along the object")
                    else:
                        out.append(f"{spec.finger} at {over_limit(angle, spec.max_angle_deg, 'deg')} to the "
                                   "object's long axis (it must lie along it)")
        if not self.thumb_ok_b[b]:
            if self.no_thumb:
                out.append(f"hand has no thumb, grasp needs thumb {comp.signature.thumb}")
            else:
                state = "abducted" if self.thumb_abducted[b] else "adducted"
                out.append(f"thumb {state}, grasp needs {comp.signature.thumb}")
        return out

    def _check_index(self, b: int) -> None:
        n = len(self)
        if not -n <= b < n:
            raise ConfigurationError(f"trial index: expected 0 <= b < {n}, got {b}")

    def forbidden_reasons(self, b: int = 0) -> list[str]:
        """The forbidden patterns trial ``b`` touched, one line each (part of :meth:`reasons`):
        ``"forbidden palm.* touched (palm.pad)"``."""
        self._check_index(b)
        comp = self.compiled
        out: list[str] = []
        for f, pattern in enumerate(comp.signature.forbidden):
            if self.forbidden_hit_b[b, f]:
                hit = comp.forbidden_masks[f] & self.contact[b]  # (R,)
                touched = [lab for lab, h in zip(comp.labels, hit) if h]
                out.append(f"forbidden {pattern} touched ({', '.join(touched)})")
        if self.other_hit_b is not None and self.other_hit_b[b]:
            touched = [lab for lab, h in zip(comp.labels, comp.other_mask & self.contact[b]) if h]
            out.append(
                f"forbidden unlabelled link touched ({', '.join(touched)}; with {OTHER_FORBIDDEN_WITH} "
                "forbidden, a link without a region is too)"
            )
        return out


def match_signature(
    signature: Signature,
    labels: Sequence[str],
    in_contact: ArrayLike,
    thumb_abducted: ArrayLike | None,
    label_force_n: ArrayLike | None = None,
    min_force_n: float = 0.0,
    along_deg: ArrayLike | None = None,
) -> SignatureMatch:
    """Compile (cached) and match in one call; see :meth:`CompiledSignature.match`."""
    return CompiledSignature.compile(signature, labels).match(in_contact, thumb_abducted, label_force_n, min_force_n,
                                                              along_deg)
