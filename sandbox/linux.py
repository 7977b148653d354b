"""Thin ctypes wrappers over the Linux calls the isolation layer needs.

Python 3.11 has no ``os.unshare`` and no mount API, so the few syscalls used here go through libc.
Every wrapper raises ``OSError`` with the errno on failure so that callers can fall back to a
weaker isolation tier instead of crashing.
"""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
# SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | ..._LOCKED | SECBIT_KEEP_CAPS_LOCKED
SECUREBITS_LOCKDOWN = 0x1 | 0x2 | 0x4 | 0x8 | 0x20

_SYS_MOUNT_SETATTR = {"x86_64": 442, "aarch64": 442}.get(platform.machine())
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def make_tree_readonly(path: str = "/") -> None:
    """Mark every mount at and below ``path`` read-only, nosuid and nodev in one call.

    ``mount_setattr`` (Linux 5.12+) applies recursively, which a plain remount does not: /tmp,
    /dev/shm and friends are separate mounts that would otherwise stay writable.
    """
    if _SYS_MOUNT_SETATTR is None:
        raise OSError(38, f"mount_setattr: unknown syscall number on {platform.machine()}")
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0)
    _check(
        _libc.syscall(_SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE,
                      ctypes.byref(attr), ctypes.sizeof(attr)),
        "mount_setattr",
    )


def prctl(option: int, arg2: int = 0) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg2), 0, 0, 0), f"prctl({option})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def limit_future_capabilities() -> None:
    """Empty the bounding set and lock the securebits, once, in the worker.

    Both are inherited by every child. Afterwards no ``execve`` can hand capabilities back (not
    even of a uid-0 program), while the worker keeps the ones it holds now for its mounts.
    """
    for cap in range(64):
        try:
            prctl(PR_CAPBSET_DROP, cap)
        except OSError:
            break  # past the last capability this kernel knows
    prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKDOWN)


# Built at import time so that a forked child's capset is one foreign call, nothing more.
_CAP_HEADER = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
_CAP_NONE = (_CapData * 2)()
_capset = _libc.capset


def drop_all_capabilities() -> None:
    """Drop every capability this process holds, for good (after ``limit_future_capabilities``).

    Inside our user namespace the process is uid 0 and starts with all capabilities there; without
    this, code under test could remount the root file system writable.
    """
    _check(_capset(ctypes.byref(_CAP_HEADER), ctypes.byref(_CAP_NONE)), "capset")


def write_id_maps(uid: int, gid: int) -> None:
    """Map our outer uid/gid to 0 inside a fresh user namespace (works unprivileged)."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")
