/* mothership/admin.h — `mothership admin --data-dir DIR <command...>`: operator commands that
 * open the store directly (contract: briefs/mothership_cli.md). The server may run at the same
 * time: SQLite in WAL mode lets both write (DESIGN D7).
 *
 * Every command prints one JSON object on stdout. Plaintext tokens are printed exactly once,
 * at creation, and never stored. */
#pragma once

/* argv[0..argc) are the arguments after "admin". Returns the exit status: 0 success,
 * 1 runtime error ("mothership: <message>" on stderr), 2 usage error. */
int ms_admin_main(int argc, char *const argv[]);
