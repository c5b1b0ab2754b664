"""The calendar: providers, rooms and appointment types, working hours and time off, booking
without double-booking, recurring series, the waitlist, free-slot search and the day and week
views the scheduler shows."""
