#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// Removing temporary files when the process is interrupted (Ctrl-C, `kill`): a registry of paths
// that a signal handler can read without allocating or locking, and the handler itself.
//
// `AudioWriter` registers its temporary file while it is being written; a program that installs
// the handler (`mambasep separate`) then leaves no `.NAME.RANDOM.tmp` behind on SIGINT, SIGTERM
// or SIGHUP. SIGKILL cannot be caught: after `kill -9` only such temporaries remain.

// MARK: - Registry

/// Paths to delete (files) or remove when empty (folders) if the process is interrupted.
public enum InterruptCleanup {
    /// Paths registered at once, at most (more are not removed on a signal, only on normal exit).
    static let capacity = 256

    /// Slot i holds a `strdup`ed path or nil; slot kinds say file (unlink) or folder (rmdir).
    fileprivate static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        p.initialize(repeating: nil, count: capacity)
        return p
    }()
    fileprivate static let isFolder: UnsafeMutablePointer<Bool> = {
        let p = UnsafeMutablePointer<Bool>.allocate(capacity: capacity)
        p.initialize(repeating: false, count: capacity)
        return p
    }()
    private static let lock = NSLock()

    /// A registration, for `remove(_:)`.
    public struct Token: Sendable { let slot: Int }

    /// Registers a file to delete on interruption; nil when the registry is full.
    @discardableResult
    public static func add(file path: String) -> Token? { add(path, folder: false) }

    /// Registers a folder to remove on interruption if it is empty then (folders are removed
    /// after files, the latest registered first).
    @discardableResult
    public static func add(folder path: String) -> Token? { add(path, folder: true) }

    private static func add(_ path: String, folder: Bool) -> Token? {
        lock.lock(); defer { lock.unlock() }
        for i in 0..<capacity where slots[i] == nil {
            isFolder[i] = folder
            slots[i] = strdup(path)
            return Token(slot: i)
        }
        return nil
    }

    /// Forgets a registration (the file was renamed into place or deleted).
    public static func remove(_ token: Token?) {
        guard let token else { return }
        lock.lock(); defer { lock.unlock() }
        let p = slots[token.slot]
        slots[token.slot] = nil
        free(p)
    }

    /// Paths registered now (tests).
    public static var registered: [String] {
        lock.lock(); defer { lock.unlock() }
        return (0..<capacity).compactMap { slots[$0].map { String(cString: $0) } }
    }

    // MARK: Handler

    /// Installs the handler for SIGINT, SIGTERM and SIGHUP: it deletes the registered files,
    /// removes the registered folders that are empty, says so on stderr and exits with
    /// 128 + the signal number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
    public static func installSignalHandlers() {
        _ = slots; _ = isFolder          // initialise before any signal can arrive
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = interruptHandler
            #else
            action.__sigaction_u.__sa_handler = interruptHandler
            #endif
            sigemptyset(&action.sa_mask)
            // Block the other signals while one is handled, so the cleanup runs once.
            sigaddset(&action.sa_mask, SIGINT); sigaddset(&action.sa_mask, SIGTERM); sigaddset(&action.sa_mask, SIGHUP)
            action.sa_flags = 0
            sigaction(sig, &action, nil)
        }
    }
}

/// Only async-signal-safe calls: unlink, rmdir, write, _exit.
private func interruptHandler(_ sig: Int32) {
    let slots = InterruptCleanup.slots, folder = InterruptCleanup.isFolder
    for i in 0..<InterruptCleanup.capacity { if let p = slots[i], !folder[i] { unlink(p) } }
    // Nested folders: a parent is empty only once its child is gone, so go over them a few times.
    for _ in 0..<8 {
        var i = InterruptCleanup.capacity - 1
        while i >= 0 { if let p = slots[i], folder[i] { rmdir(p) }; i -= 1 }
    }
    let msg: StaticString = sig == SIGINT ? "mambasep: interrupted (SIGINT); unfinished outputs removed\n"
        : sig == SIGTERM ? "mambasep: terminated (SIGTERM); unfinished outputs removed\n"
        : "mambasep: hung up (SIGHUP); unfinished outputs removed\n"
    _ = write(2, msg.utf8Start, msg.utf8CodeUnitCount)
    _exit(128 + sig)
}
