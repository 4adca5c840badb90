"""Counting and logging of skipped inputs.

bombo never drops data silently: whatever is skipped (a missing file, a box
outside the image, a mask with no labelled pixel, an unreadable image) is
counted by reason and logged with the first few offending files.
"""
import logging
from collections import Counter, defaultdict

from mmengine.logging import print_log


class SkipCounter:
    """Counts skipped inputs by reason and keeps examples for the log.

    Args:
        owner (str): name printed in the log line (e.g. the dataset class).
        max_examples (int): how many messages to keep per reason.
    """

    def __init__(self, owner: str, max_examples: int = 3):
        self.owner = owner
        self.max_examples = max_examples
        self.counts = Counter()
        self.examples = defaultdict(list)
        self._logged = Counter()

    def add(self, reason: str, message: str, n: int = 1) -> None:
        self.counts[reason] += n
        if len(self.examples[reason]) < self.max_examples:
            self.examples[reason].append(message)

    def __getitem__(self, reason: str) -> int:
        return self.counts[reason]

    def total(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        if not self.counts:
            return f'{self.owner}: nothing skipped'
        parts = []
        for reason, n in sorted(self.counts.items()):
            ex = '; '.join(self.examples[reason])
            parts.append(f'{n} x {reason} (e.g. {ex})')
        return f'{self.owner} skipped ' + ', '.join(parts)

    def log(self) -> None:
        """Log the counts that changed since the last call."""
        if self.counts != self._logged and self.counts:
            print_log(str(self), logger='current', level=logging.WARNING)
            self._logged = Counter(self.counts)
