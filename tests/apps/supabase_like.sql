-- An application laid out as a Supabase project is (issue 23's fixture 1): accounts in auth.users
-- with uuid keys and Supabase's usual columns, a profile table keyed by the account, two event
-- tables with uuid keys, defaults and a jsonb payload, row-level security on, and an app trigger
-- on an event table that must keep working. None of it is Synthetics' own: attach mode must create,
-- alter and drop nothing here (but the tag index `target index` makes).

CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA auth;

CREATE TABLE auth.users (
    instance_id uuid,
    id uuid NOT NULL PRIMARY KEY,
    aud varchar(255),
    role varchar(255),
    email varchar(255) UNIQUE,
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    invited_at timestamptz,
    confirmation_token varchar(255),
    recovery_token varchar(255),
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamptz,
    updated_at timestamptz,
    phone text UNIQUE DEFAULT NULL,
    banned_until timestamptz,
    is_sso_user boolean NOT NULL DEFAULT false,
    deleted_at timestamptz,
    is_anonymous boolean NOT NULL DEFAULT false
);
CREATE INDEX users_instance_id_idx ON auth.users (instance_id);

-- Supabase's own sign-in sessions: logins, not the app's sessions (`target inspect` never maps
-- them; no sessions table is the app's here, so the file maps none).
CREATE TABLE auth.sessions (
    id uuid NOT NULL PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    created_at timestamptz,
    updated_at timestamptz,
    not_after timestamptz
);

CREATE TABLE public.profiles (
    id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    display_name text,
    timezone text NOT NULL DEFAULT 'UTC',
    locale text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.journey_scene_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    journey_id text,
    scene_id text,
    event_type text NOT NULL,
    event_payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journey_scene_events_user_created_idx
    ON public.journey_scene_events (user_id, created_at);

CREATE TABLE public.mindblock_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    scene_id text,
    mindblock_type text NOT NULL,
    intensity smallint CHECK (intensity BETWEEN 1 AND 5),
    event_payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The app's own bookkeeping, fed by a trigger on an event table: it must keep counting our rows
-- as it counts real ones.
CREATE TABLE public.user_event_counts (
    user_id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    scene_events bigint NOT NULL DEFAULT 0
);
CREATE FUNCTION public.count_scene_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.user_event_counts AS c (user_id, scene_events) VALUES (NEW.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET scene_events = c.scene_events + 1;
    RETURN NEW;
END
$$;
CREATE TRIGGER journey_scene_events_count AFTER INSERT ON public.journey_scene_events
    FOR EACH ROW EXECUTE FUNCTION public.count_scene_event();

-- Row-level security as Supabase projects have it: users see and write their own rows.
ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.journey_scene_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.mindblock_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_profile ON public.profiles
    USING (id::text = current_setting('app.user_id', true));
CREATE POLICY own_scene_events ON public.journey_scene_events
    USING (user_id::text = current_setting('app.user_id', true));
CREATE POLICY own_mindblock_events ON public.mindblock_events
    USING (user_id::text = current_setting('app.user_id', true));
