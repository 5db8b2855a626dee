"""Why a file or folder could not be used, in Chinese: `OSError.strerror` is the C library's English
on Linux and often on Windows too ("No such file or directory", "File exists")."""

from __future__ import annotations

import errno

_REASONS = {
    errno.ENOENT: "找不到这个文件或文件夹",
    errno.EEXIST: "已有同名的文件",
    errno.ENOTDIR: "路径中有一段是文件而不是文件夹",
    errno.EISDIR: "这是一个文件夹,不是文件",
    errno.EACCES: "没有权限(文件可能被其他程序占用或设为只读)",
    errno.EPERM: "没有权限(文件可能被其他程序占用或设为只读)",
    errno.ENOSPC: "磁盘或U盘已满",
    errno.EROFS: "磁盘或U盘是只读的(可能打开了写保护)",
    errno.ENAMETOOLONG: "文件名或路径太长",
    errno.EIO: "读写出错(U盘可能已拔出或损坏)",
}


def os_reason(exc: OSError) -> str:
    """The reason of `exc` in Chinese; an error without a known errno keeps the system's own text
    (on a Chinese Windows that text is Chinese)."""
    return _REASONS.get(exc.errno, exc.strerror or str(exc))
