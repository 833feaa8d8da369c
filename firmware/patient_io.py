"""The patient's side of the device: the buttons, the LED and the buzzer, and the tones they hear.

The START button starts, pauses, resumes or stops the session; UP and DOWN
step the stimulation level while it runs. The LED shows the state (and,
while a session runs, advice or a relaxation above its target); the buzzer
sounds a cue tone at every cue, a tone when the session is done or paused,
an alarm on a fault, and between them the biofeedback pitch.
"""

from firmware import hal as H
from firmware.session import PAUSE, RESUME, STOP
from protocol import messages as m
from protocol.errors import ProtocolError

# What the patient hears. Public: the patient's instructions (and the
# simulated patient, which answers to them) rely on them.
TONE_CONTRACT_HZ = 880
TONE_RELAX_HZ = 440  # rest or relax: let go
TONE_DONE_HZ = 660
TONE_ALARM_HZ = 2000
# Biofeedback: while the envelope is above the target in a relaxation phase
# the buzzer sounds in this band, higher the further above; silence means
# at or below target. Below the cue tones so the two are never confused.
TONE_FEEDBACK_MIN_HZ = 200
TONE_FEEDBACK_MAX_HZ = 400
# the device advises ending the session (rest tone rising, paused twice)
TONE_ADVICE_HZ = 520
_BEEP_MS = 200
_DONE_MS = 600
_ALARM_MS = 1000
_ADVICE_MS = 1500
_LED_FOR_STATE = (H.LED_IDLE, H.LED_RUNNING, H.LED_RUNNING, H.LED_PAUSED, H.LED_DONE, H.LED_FAULT, H.LED_OFF)


class PatientIO:
    def __init__(self, hal, session, bio, stim, start_session):
        self._hal = hal
        self._session = session
        self._bio = bio
        self._stim = stim
        self._start_session = start_session  # start_session(now): the START button in IDLE or DONE
        self._tone_until_ms = 0
        self._tone_hz = 0
        self._led = -1

    # -- tones ------------------------------------------------------------

    def cue(self, cue, now):
        self._beep(TONE_CONTRACT_HZ if cue == m.CUE_CONTRACT else TONE_RELAX_HZ, now, _BEEP_MS)

    def paused(self, now):
        self._beep(TONE_RELAX_HZ, now, _BEEP_MS)

    def done(self, now):
        self._beep(TONE_DONE_HZ, now, _DONE_MS)

    def alarm(self, now):
        self._beep(TONE_ALARM_HZ, now, _ALARM_MS)

    def advice(self, now):
        self._beep(TONE_ADVICE_HZ, now, _ADVICE_MS)

    def feedback_hz(self):
        """The biofeedback pitch now (0: silent), for the buzzer and the stream alike."""
        return self._bio.feedback_hz(TONE_FEEDBACK_MIN_HZ, TONE_FEEDBACK_MAX_HZ)

    def _beep(self, hz, now, ms):
        self._tone_hz = hz
        self._tone_until_ms = now + ms

    # -- every loop pass --------------------------------------------------

    # poll() in three: a call whose state exceeds 11 words (arguments, locals, stack) puts its
    # frame on MicroPython's heap, a search of the heap every pass

    def poll(self, now):
        pressed = self._hal.buttons()
        if pressed:
            self._pressed(pressed, now)
        running = self._session.state == m.RUNNING
        led = _LED_FOR_STATE[self._session.state]
        if running:
            if self._bio.advice:
                led = H.LED_ADVICE
            elif self.feedback_hz():
                led = H.LED_ABOVE_TARGET  # steady again once at or below the target
        if led != self._led:
            self._hal.led(led)
            self._led = led
        if now < self._tone_until_ms:
            hz = self._tone_hz
        elif running:
            hz = self.feedback_hz()
        else:
            hz = 0
        self._hal.buzzer(hz)

    def _pressed(self, pressed, now):
        ses = self._session
        if pressed & (H.BTN_UP | H.BTN_DOWN) and ses.state == m.RUNNING:
            self._stim.step_level(pressed & H.BTN_UP)
        if pressed & H.BTN_START:
            self._start_button(ses.state, now)

    def _start_button(self, st, now):
        ses = self._session
        try:
            if st == m.IDLE or st == m.DONE:
                self._start_session(now)
            elif st == m.RUNNING:
                ses.fire(PAUSE, m.REASON_BUTTON, now)
                self._bio.patient_paused()
            elif st == m.PAUSED:
                ses.fire(RESUME, m.REASON_BUTTON, now)
            else:
                ses.fire(STOP, m.REASON_BUTTON, now)
        except ProtocolError:
            pass  # refused and logged by the session; the LED shows why
