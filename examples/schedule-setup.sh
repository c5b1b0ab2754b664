#!/usr/bin/env bash
# The schedule of a small practice, set up once after `hpms init` (docs/scheduling.md): two
# providers at one location, one of them also at a second site; rooms; five appointment
# types; working hours with a lunch break and an every-other-Saturday clinic; a holiday; the
# scheduling policy. Run it as an admin, after editing the names, NPIs, dates and locations.
#
#   schedule-setup.sh [FIRST_DAY]       (default: next Monday; the hours apply from that day)
#
# set -e stops at the first command hpms refuses and exits with its code (docs/cli.md):
# a second run stops at the first thing that already exists (exit 4).
set -euo pipefail

main=${MAIN_LOCATION:-Main}
second=${SECOND_LOCATION:-}          # e.g. "Lakeside Clinic"; empty: one location only
first_day=${1:-$(date -d 'next monday' +%F)}
saturday=$(date -d "$first_day +5 days" +%F)
holiday=${HOLIDAY:-$(date -d "$first_day +3 weeks" +%F)}

# Policy: a cancellation under 24 hours before the visit is late; slots every 15 minutes.
hpms schedule policy --late-cancel-hours 24 --slot-step 15

# Rooms (an equipment room is never given to a visit by itself).
hpms rooms add --location "$main" --name "Exam 1" --kind exam
hpms rooms add --location "$main" --name "Exam 2" --kind exam
hpms rooms add --location "$main" --name "Procedure Room" --kind procedure
hpms rooms add --location "$main" --name "ECG cart" --kind equipment

# Appointment types: minutes, buffer after, a room, the default billing code.
hpms appointment-types add --name "New patient" --duration 40 --code 99203 --color blue
hpms appointment-types add --name "Follow-up" --duration 20 --buffer 5 --code 99213 --color green
hpms appointment-types add --name "Annual physical" --duration 30 --needs-room --code 99396 --color purple
hpms appointment-types add --name "Telehealth" --duration 15 --self-bookable --code 99212 --color teal
hpms appointment-types add --name "Procedure" --duration 30 --buffer 10 --needs-room --code 11102 --color red

# Providers (NPIs need a valid check digit: use your providers' real ones).
hpms providers add --first-name Grace --last-name Okafor --credentials MD --npi 1234567893 \
  --taxonomy 207Q00000X --location "$main"
hpms providers add --first-name Samuel --last-name Reyes --credentials NP --npi 1548203946 \
  --location "$main" ${second:+--location "$second"}

# Dr. Okafor: weekdays with a lunch break (two rules for one day: --add).
hpms schedule hours set Okafor --location "$main" --days MO-FR --start 08:00 --end 12:00 --from "$first_day"
hpms schedule hours set Okafor --location "$main" --days MO-FR --start 13:00 --end 17:00 --from "$first_day" --add
# ...and a Saturday morning clinic every other week, counted from the first Saturday.
hpms schedule hours set Okafor --location "$main" --rrule "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA" \
  --start 09:00 --end 12:00 --from "$saturday"

# Reyes: Monday to Wednesday at the main site, Thursday and Friday at the second one.
if [[ -n $second ]]; then
  hpms schedule hours set Reyes --location "$main" --days MO-WE --start 08:00 --end 17:00 --from "$first_day"
  hpms schedule hours set Reyes --location "$second" --days TH,FR --start 08:00 --end 17:00 --from "$first_day"
else
  hpms schedule hours set Reyes --location "$main" --days MO-FR --start 08:00 --end 17:00 --from "$first_day"
fi

# A practice holiday (every provider, every location) and a provider's afternoon off.
hpms schedule timeoff add --holiday --from "$holiday" --reason "Practice closed"
hpms schedule timeoff add --provider Reyes --from "$first_day 13:00" --to "$first_day 17:00" --reason "Training"

# What it looks like.
hpms schedule hours list
hpms schedule show Okafor --week "$first_day"
hpms appointments find-slot --type "New patient" --after "$first_day 08:00" --count 3
