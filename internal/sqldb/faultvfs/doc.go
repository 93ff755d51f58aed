// Package faultvfs simulates power loss under SQLite, for tests of
// durability: a shim VFS records what every unsynced change to a database
// file would take to undo, and Rollback, run after the process writing
// them was killed, throws away everything that had not been synced.
//
// A test that kills a process with SIGKILL cannot catch a missing fsync:
// the kernel's page cache outlives the process and later writes it out. A
// power loss takes the page cache with it. With this package, a child
// process opens its databases through the VFS, the parent kills it and
// calls Rollback, and the files are left as a disk that kept nothing
// unsynced would leave them; the strictest outcome of a power loss, and a
// legal one.
//
// # The VFS
//
// Register installs, under a name, a VFS wrapping SQLite's default VFS
// ("unix" on Unix); MakeDefault makes it the default, so that code opening
// databases without naming a VFS (package sqldb, for one) uses it with no
// change. Registration lasts for the life of the process. The shim's file
// object is a small header followed by the wrapped VFS's own file object;
// its methods (version 3, including the shared-memory and memory-mapping
// methods, so that WAL mode works) pass through to the wrapped ones except
// for these:
//
//   - xWrite and xTruncate first append to the Journal an undo record: the
//     path, the offset, the bytes the change overwrites or cuts off (read
//     through the wrapped file, as opening a second descriptor and closing
//     it would drop SQLite's POSIX locks) and the old size. A size hint
//     (SQLITE_FCNTL_SIZE_HINT), with which the unix VFS may grow a file
//     outside xWrite, is recorded the same way.
//   - xSync, once the real sync has succeeded, appends a sync record: every
//     earlier record of that path is durable.
//   - xOpen records a file it creates; xDelete first keeps the file (a
//     hard link in the journal's backup directory, or a copy) and records
//     the deletion.
//
// Only main databases, rollback journals, WAL files and super-journals are
// journaled; temporary files are passed through untouched. So is the -shm
// file, which is not written through xWrite at all (SQLite maps it into
// memory) and needs no rollback: the first connection to open a database
// after a crash truncates it and rebuilds the WAL index from the WAL file,
// which Rollback did roll back. Rollback leaves it as it was, the most
// misleading state it could be in.
//
// # Directories
//
// A created or deleted file is durable only once its directory has been
// synced. The VFS cannot see the directory fsyncs the wrapped VFS makes,
// so it records them where the unix VFS makes them: at the first
// successful sync of a journal, WAL or super-journal opened with
// SQLITE_OPEN_CREATE (the UNIXFILE_DIRSYNC rule of os_unix.c), and in
// xDelete when SQLite asks for a directory sync. Rollback keeps, for each
// path, the file that was there at its directory's last sync: a file
// created since is removed, and a file deleted since comes back (from its
// backup) with its contents as of its last sync.
//
// Files and directories created outside the VFS (such as a database file
// that package sqldb creates before SQLite opens it, or its directory) are
// taken as durable from the start: the model does not see them being made.
// Neither does it model partial outcomes, such as some unsynced writes
// reaching the disk and others not, or torn sectors.
//
// # The journal
//
// Records are appended with one write(2) each and never synced: they only
// have to outlive the process, which the page cache ensures. An undo
// record is written before the change it describes, so a process killed in
// between leaves a journal that undoes at worst a change that never
// happened; a sync record is written after the sync, so a kill in between
// loses at worst a sync that was never acknowledged. (A creation is
// recorded after it, the one place where a kill at the wrong instant makes
// the model lenient: the file is then taken as there from the start.) The
// last record may be cut short by the kill; Rollback ignores it, as the
// change it describes never started. Each record carries a CRC-32C; any
// other damage makes Rollback fail without touching the files.
package faultvfs
