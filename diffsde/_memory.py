"""Refuse runs whose buffers cannot fit, before allocating anything."""
import os


def physical_memory_bytes():
    """Installed physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(n_bytes, what):
    """Raise MemoryError when ``n_bytes`` exceed physical memory."""
    limit = physical_memory_bytes()
    if limit is not None and n_bytes > limit:
        raise MemoryError(
            f"{what} would need {n_bytes:,} bytes ({n_bytes / 2**30:.1f} GiB) but this "
            f"machine has {limit:,} bytes of physical memory; save fewer states "
            f"(save_every/save_at) or use a smaller batch"
        )
