//! The seccomp filter every graded program runs under, installed by the
//! child between `clone` and `execve` (see [`super::child`]): it closes the
//! kernel's keyrings and other ABIs' system calls to every program, and
//! `socket(2)` to the programs of checks that make it fail.

use std::io;

/// Installs the program's seccomp filter in the calling process (and so in
/// the program it is about to exec). Denied, whatever the program:
/// - the kernel's keyrings (`add_key`, `keyctl`, `request_key`: EPERM): a
///   uid's keyring outlives its processes, and a later grade that gets the
///   same guest uid could read what an earlier program left there;
/// - system calls of another ABI (the 32-bit `int 0x80`, x32: ENOSYS), by
///   which a program could make the calls above under other numbers.
///
/// With `fail_socket_calls`, `socket(2)` fails with that errno too: it works
/// whatever language the program is written in, unlike a descriptor limit,
/// which the dynamic loader and language runtimes trip over before `main`.
/// Only allocation-free system calls: it runs between fork and exec.
pub(super) fn install_filter(fail_socket_calls: Option<i32>) -> io::Result<()> {
    #[cfg(target_arch = "x86_64")]
    const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return match fail_socket_calls {
        Some(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no seccomp filter for this architecture",
        )),
        None => Ok(()),
    };
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        use libc::{
            BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, SECCOMP_RET_ALLOW,
            SECCOMP_RET_DATA, SECCOMP_RET_ERRNO, sock_filter,
        };
        /// x32's system calls are x86_64's numbers with this bit set.
        const X32_SYSCALL_BIT: u32 = 0x4000_0000;
        let statement = |code: u32, k: u32| sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        // Jumps count the instructions they skip: `jt` when true.
        let jump_if = |test: u32, k: u32, jt: u8| sock_filter {
            code: (BPF_JMP | test | BPF_K) as u16,
            jt,
            jf: 0,
            k,
        };
        let fail_with = |errno: i32| {
            statement(
                BPF_RET | BPF_K,
                SECCOMP_RET_ERRNO | (errno as u32 & SECCOMP_RET_DATA),
            )
        };
        // No system call has this number: the socket test never matches.
        let socket = fail_socket_calls.map_or(u32::MAX, |_| libc::SYS_socket as u32);
        // Offsets in `struct seccomp_data`: nr at 0, arch at 4.
        let filter = [
            /* 0 */ statement(BPF_LD | BPF_W | BPF_ABS, 4),
            /* 1 */ jump_if(BPF_JEQ, NATIVE_ARCH, 1),
            /* 2 */ fail_with(libc::ENOSYS),
            /* 3 */ statement(BPF_LD | BPF_W | BPF_ABS, 0),
            /* 4 */ jump_if(BPF_JGE, X32_SYSCALL_BIT, 7),
            /* 5 */ jump_if(BPF_JEQ, libc::SYS_add_key as u32, 4),
            /* 6 */ jump_if(BPF_JEQ, libc::SYS_keyctl as u32, 3),
            /* 7 */ jump_if(BPF_JEQ, libc::SYS_request_key as u32, 2),
            /* 8 */ jump_if(BPF_JEQ, socket, 2),
            /* 9 */ statement(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            /* 10 */ fail_with(libc::EPERM),
            /* 11 */ fail_with(fail_socket_calls.unwrap_or(libc::EPERM)),
            /* 12 */ fail_with(libc::ENOSYS),
        ];
        let program = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: prctl with valid arguments; `program` and `filter` outlive
        // the call, which copies the filter into the kernel.
        unsafe {
            // Required to install a filter without CAP_SYS_ADMIN; it also
            // means the program cannot gain privileges (setuid), which a
            // graded program has no business doing anyway.
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &raw const program,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}
