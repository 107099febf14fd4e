import { emit } from "@tauri-apps/api/event";
import { mockIPC } from "@tauri-apps/api/mocks";
import { createBackend } from "./backend";

/** Replace the shell with the fixture backend (and its events) for this page. */
export function installMocks(scenario: string): void {
  let backend: ReturnType<typeof createBackend>;
  mockIPC(
    async (cmd, args) => {
      // A little latency so loading states are real, as they are over IPC.
      await new Promise((r) => setTimeout(r, 40));
      return backend.handle(cmd, args);
    },
    { shouldMockEvents: true },
  );
  backend = createBackend({
    scenario,
    emit: (event, payload) => void emit(event, payload),
  });
  (window as unknown as { __syncdeskMock: unknown }).__syncdeskMock = backend;
}
