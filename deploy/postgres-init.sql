-- One database per Chorus service (compose only; run once by the postgres image on an empty volume).
-- Each service owns its database and never reads another's. Production gives each service its
-- own role as well: see docs/operations.md.
CREATE DATABASE identity;
CREATE DATABASE content;
CREATE DATABASE scheduling;
CREATE DATABASE publishing;
CREATE DATABASE engagement;
CREATE DATABASE gamification;
CREATE DATABASE notifications;
