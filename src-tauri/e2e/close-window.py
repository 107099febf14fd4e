"""Close an X11 window the way a window manager's close button does: send it the ICCCM
WM_DELETE_WINDOW client message (the app decides what closing means), never kill it.
Under Xvfb there is no window manager to ask, so the message goes straight to the window.
    /usr/bin/python3 close-window.py WINDOW_ID
"""

import sys

from Xlib import X, display, protocol


def main() -> None:
    d = display.Display()
    window = d.create_resource_object("window", int(sys.argv[1]))
    protocols = d.intern_atom("WM_PROTOCOLS")
    delete = d.intern_atom("WM_DELETE_WINDOW")
    event = protocol.event.ClientMessage(
        window=window,
        client_type=protocols,
        data=(32, [delete, X.CurrentTime, 0, 0, 0]),
    )
    window.send_event(event, event_mask=X.NoEventMask)
    d.flush()


if __name__ == "__main__":
    main()
